// The `daxpin` command (issue 6). Placeholder until the command lands.
print("daxpin: not yet implemented")
