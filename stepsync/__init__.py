"""Step Sync ChatBot project package: settings, database backend, cross-cutting glue."""
