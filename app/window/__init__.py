"""The main window and what belongs to it alone: building and wiring it, its actions and menus, the smart tools'
docks, giving the keyboard back after a dialog, the theme."""
