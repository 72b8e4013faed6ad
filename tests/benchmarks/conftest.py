collect_ignore_glob = ["*.py"]  # benchmarks, not tests: run them with run.py
