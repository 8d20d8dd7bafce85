"""``branchline-console``: the staff console, a local web app over the person's certificate."""
