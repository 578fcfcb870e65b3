"""Client-side bridges to a running server's control socket: `proxy` and `attach`."""
