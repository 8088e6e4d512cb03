Feature: Network isolation
  The prod vault and the prod case search API have public network access disabled and answer
  only on their private endpoints in vnet-prod-westus. The prod environment's delegated subnets
  (westus, and eastus over the peering) reach them; the public internet, the dev environment
  (no vNet: it egresses from the Power Platform service on the internet) and the test
  environment (its own, unpeered vNets) do not. Each scenario runs on every fabric: loopback
  (a relay per face asks the reachability oracle), netns (namespaces, routes, nftables) and
  docker (the netns wiring in containers; @serial: each starts 16 containers, so they run one at
  a time rather than among 64 concurrent scenarios).
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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

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

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

  Scenario Outline: Removing the allow rule at run time blocks the delegated subnets, the flow log names the rule that denied, and adding it back restores them
    Given the contoso network on the <fabric> fabric
    Then "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"
    When the rule "AllowVnetHttpsInbound" is removed from "nsg-pe-prod"
    Then "pp-prod-eastus" cannot reach the private endpoint "pe-kv-contoso-prod"
    And the flow log records "pp-prod-eastus" denied at "pe-kv-contoso-prod" by the rule "DenyAllOtherInbound"
    When the rule "AllowVnetHttpsInbound" allowing inbound TCP 443 from "VirtualNetwork" is added to "nsg-pe-prod" at priority 100
    Then "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

  # Azure takes NSG priorities 100 to 4096 only, and contoso's allow rule holds 100, so a deny
  # rule that should win is placed after moving the allow rule down.
  Scenario Outline: A deny rule added at run time blocks eastus, the flow log names it, and removing it restores the path
    Given the contoso network on the <fabric> fabric
    When the rule "AllowVnetHttpsInbound" is removed from "nsg-pe-prod"
    And the rule "AllowVnetHttpsInbound" allowing inbound TCP 443 from "VirtualNetwork" is added to "nsg-pe-prod" at priority 200
    Then "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"
    When the rule "DenyEastusHttpsInbound" denying inbound TCP 443 from "10.20.0.0/16" is added to "nsg-pe-prod" at priority 150
    Then "pp-prod-eastus" cannot reach the private endpoint "pe-kv-contoso-prod"
    And the flow log records "pp-prod-eastus" denied at "pe-kv-contoso-prod" by the rule "DenyEastusHttpsInbound"
    But "pp-prod-westus" can reach the private endpoint "pe-kv-contoso-prod"
    When the rule "DenyEastusHttpsInbound" is removed from "nsg-pe-prod"
    Then "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

    @docker @serial
    Examples: docker
      | fabric |
      | docker |

  Scenario Outline: A deny rule at a lower priority than the allow rule changes nothing
    Given the contoso network on the <fabric> fabric
    When the rule "DenyEastusHttpsLate" denying inbound TCP 443 from "10.20.0.0/16" is added to "nsg-pe-prod" at priority 200
    Then "pp-prod-eastus" can reach the private endpoint "pe-cases-api-prod"
    And "pp-prod-eastus" can reach the private endpoint "pe-kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

    @docker @serial
    Examples: docker
      | fabric |
      | docker |
