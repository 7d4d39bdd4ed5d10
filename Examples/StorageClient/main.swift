print("daxpin-client: not yet implemented")
