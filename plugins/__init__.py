"""Built-in plugins. Each is an entry point of the tuspluggy distribution, loaded exactly
as a third-party plugin is; core never imports them by name."""
