"""Human review round trip: pick items to check, export them to Label Studio, read the answers back as gold."""
