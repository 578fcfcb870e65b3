"""The application layer: methods that answer requests. It never touches a socket."""
