"""What the window shows, decided without Qt: which commands are enabled, the navigator's geometry."""
