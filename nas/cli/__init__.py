"""nas/cli"""
