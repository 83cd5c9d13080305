"""Pure helpers with no database access, each tested on its own."""
