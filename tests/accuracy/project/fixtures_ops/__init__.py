"""Hand-written fixture apps whose migrations cover every kind of migration operation."""
