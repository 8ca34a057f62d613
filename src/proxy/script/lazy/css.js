// Lazy module "css".
