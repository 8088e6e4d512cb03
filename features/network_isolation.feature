Feature: Network isolation
  The prod vault and the prod case search API have public network access disabled and answer
  only on their private endpoints in vnet-prod-westus. The prod environment's delegated subnets
  (westus, and eastus over the peering) reach them; the public internet, the dev environment
  (no vNet: it egresses from the Power Platform service on the internet) and the test
  environment (its own, unpeered vNets) do not. Each scenario runs on both fabrics: loopback
  (a relay per face asks the reachability oracle) and netns (namespaces, routes, nftables).
  A plain TCP echo answers on every face, so "reach" means a real connection carries data.

  Scenario Outline: The public internet cannot reach the prod API or vault
    Given the contoso network on the <fabric> fabric
    Then "internet" cannot reach the private endpoint "pe-kv-contoso-prod"
    And "internet" cannot reach the private endpoint "pe-cases-api-prod"
    And from "internet" the name "kv-contoso-prod.vault.azure.net" resolves to the public endpoint of "kv-contoso-prod"
    And from "internet" the name "cases-api-prod.azurewebsites.net" resolves to the public endpoint of "cases-api-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Dev, without a vNet, cannot reach prod
    Given the contoso network on the <fabric> fabric
    Then "pp-dev-westus" cannot reach the private endpoint "pe-kv-contoso-prod"
    And "pp-dev-westus" cannot reach the private endpoint "pe-cases-api-prod"
    And "pp-dev-eastus" cannot reach the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Test cannot reach prod
    Given the contoso network on the <fabric> fabric
    Then "pp-test-westus" cannot reach the private endpoint "pe-kv-contoso-prod"
    And "pp-test-eastus" cannot reach the private endpoint "pe-cases-api-prod"
    And from "pp-test-westus" the name "kv-contoso-prod.vault.azure.net" does not resolve
    But "pp-test-westus" can reach the private endpoint "pe-kv-contoso-test"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Prod's delegated subnets reach both prod private endpoints
    Given the contoso network on the <fabric> fabric
    Then "pp-prod-westus" can reach the private endpoint "pe-kv-contoso-prod"
    And "pp-prod-westus" can reach the private endpoint "pe-cases-api-prod"
    And "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"
    And "pp-prod-eastus" can reach the private endpoint "pe-cases-api-prod"
    And from "pp-prod-eastus" the name "kv-contoso-prod.vault.azure.net" resolves to the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: The flow log shows the prod path never crossed the public internet
    Given the contoso network on the <fabric> fabric
    When "pp-prod-westus" connects to the private endpoint "pe-kv-contoso-prod"
    And "pp-prod-eastus" connects to the private endpoint "pe-cases-api-prod"
    Then the flow log shows 2 connections begun from the prod delegated subnets
    And no flow log record of the prod delegated subnets crossed the public internet

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Without the peering, eastus loses the westus private endpoints
    Given the contoso network on the <fabric> fabric
    When the peering between "vnet-prod-westus" and "vnet-prod-eastus" is turned off
    Then "pp-prod-eastus" cannot reach the private endpoint "pe-kv-contoso-prod"
    And "pp-prod-eastus" cannot reach the private endpoint "pe-cases-api-prod"
    But "pp-prod-westus" can reach the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |
