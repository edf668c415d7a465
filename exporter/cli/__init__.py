"""The command line: arguments, serving, --once and the demo."""
