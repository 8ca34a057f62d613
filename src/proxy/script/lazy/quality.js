// Lazy module "quality".
