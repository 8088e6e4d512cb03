Feature: Regional failover
  Power Platform fails an environment over to the other region of its geo without any action
  by the customer. Because prod has delegated subnets in both paired regions and the two vNets
  are peered, the backend in westus stays reachable from eastus after a failover.

  Background:
    Given the contoso landscape is running
    And "alice@contoso.onmicrosoft.com" signs in through "cases-connector" for "api://contoso-cases/Cases.Read"

  Scenario: Before the outage, prod runs in westus and reaches its API
    Then the environment "prod" runs in "westus" on host "pp-prod-westus"
    When "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then the search succeeds

  Scenario: A westus outage moves prod to eastus, which still reaches the westus private endpoint
    When the region "westus" has an outage
    Then the environment "prod" runs in "eastus" on host "pp-prod-eastus"
    When "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-eastus"
    Then every case "alice@contoso.onmicrosoft.com" sees belongs to "alice@contoso.onmicrosoft.com" or to a group of hers
    And the search succeeds

  Scenario: The westus delegated subnet is gone during the outage
    When the region "westus" has an outage
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then the search does not reach the API

  Scenario: Without the peering, a failed-over prod loses its backend
    When the vNet peering between "vnet-prod-westus" and "vnet-prod-eastus" is switched off
    And the region "westus" has an outage
    And "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-eastus"
    Then the search does not reach the API

  Scenario: After the outage ends, prod fails back to westus and reaches its backend from there
    When the region "westus" has an outage
    Then the environment "prod" runs in "eastus" on host "pp-prod-eastus"
    When the outage of region "westus" ends
    Then the environment "prod" runs in "eastus" on host "pp-prod-eastus"
    When the environment "prod" fails back to "westus"
    Then the environment "prod" runs in "westus" on host "pp-prod-westus"
    When "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then the search succeeds

  Scenario: Failing back into a region that is still down is refused, and prod stays in eastus
    When the region "westus" has an outage
    Then failing "prod" back to "westus" is refused with "InvalidRequest"
    And the environment "prod" runs in "eastus" on host "pp-prod-eastus"

  Scenario: Both ways: eastus after a westus outage, westus again after an eastus outage
    When the region "westus" has an outage
    And the outage of region "westus" ends
    And the region "eastus" has an outage
    Then the environment "prod" runs in "westus" on host "pp-prod-westus"
    When "alice@contoso.onmicrosoft.com" searches "cases-api-prod.azurewebsites.net" for "outage" from host "pp-prod-westus"
    Then the search succeeds
