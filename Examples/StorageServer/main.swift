print("daxpin-server: not yet implemented")
