"""Everything that speaks HTTP to a provider; no Django. Import from the submodules."""
