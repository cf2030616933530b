from dropcli.cli import app

app()
