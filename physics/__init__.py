"""physics package of Shenzhen Twin."""
