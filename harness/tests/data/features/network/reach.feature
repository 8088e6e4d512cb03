Feature: One reachability check
  Starts a landscape's network (loopback, no services), so the HTML report draws it.

  Scenario: The prod delegated subnet reaches the vault's private endpoint
    Given the contoso network on the loopback fabric
    Then "pp-prod-westus" can reach the private endpoint "pe-kv-contoso-prod"
