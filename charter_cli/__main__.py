from charter_cli import entry

entry()
