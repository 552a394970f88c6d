from msashop.cli import app

app()
