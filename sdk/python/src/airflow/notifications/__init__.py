"""`airflow.notifications`: notifiers, served by updraft."""
