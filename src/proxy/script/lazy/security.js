// Lazy module "security".
