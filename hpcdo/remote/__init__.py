"""Everything that touches a machine: the connection, its scripts, transfers."""
