"""Microsoft Graph education client on httpx: typed models, paging, $batch, retries and one error map."""
