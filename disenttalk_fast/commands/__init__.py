"""One module per `disenttalk` subcommand (see disenttalk_fast/cli.py)."""
