"""Post-deployment monitoring: send labelled batches to a live endpoint, summarise, detect drift, load-test."""
