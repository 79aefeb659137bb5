"""The headless front end: ``migrate-tui COMMAND`` for scripts and CI, and the console script that
opens the wizard when no command is given. It drives the engine (:mod:`migration`) and prints its
events; the engine never imports it, and neither does the wizard (:mod:`tui`)."""
