"""latency_tables"""
