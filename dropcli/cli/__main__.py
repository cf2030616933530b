from dropcli.cli import app

if __name__ == "__main__":  # not when a spawned worker process imports this as its main module
    app()
