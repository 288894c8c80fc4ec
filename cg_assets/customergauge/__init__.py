"""The CustomerGauge side: wire names, auth, paging, retries, the endpoint table and the resource."""
