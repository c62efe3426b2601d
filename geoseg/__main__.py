"""``python -m geoseg`` runs the CLI."""

from geoseg.cli.main import cli

if __name__ == "__main__":
    cli()
