"""`python -m llmflow.worker STORE_KIND`: the worker process (main.py)."""

from .main import main

if __name__ == "__main__":
    main()
