Feature: The custom connector runtime
  A Power Apps user calls the contoso-cases custom connector. The connector runtime of the
  user's environment reads the connector's client id and secret from Key Vault through Secret
  environment variables (as the Dataverse service principal), holds the user's OAuth connection
  (signed in and consented on Entra's page), and sends each call from the environment's
  delegated subnet to the API's private endpoint. What Azure would refuse on the way, the
  landscape refuses at the same place and in the same words.

  Scenario Outline: Alice, Bob and Carol search through the connector in prod, from pp-prod-westus
    Given the contoso landscape is running on the <fabric> fabric
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-westus"
    And every case the call returned belongs to "alice@contoso.onmicrosoft.com" or to a group of hers
    When "bob@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-westus"
    And every case the call returned belongs to "bob@contoso.onmicrosoft.com" or to a group of hers
    When "carol@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-westus"
    And the call returned cases of both teams
    And the flow log shows the call leaving "pp-prod-westus" for "cases-api-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: After a westus outage, prod calls leave from pp-prod-eastus over the peering
    Given the contoso landscape is running on the <fabric> fabric
    When the region "westus" has an outage
    And "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-eastus"
    And the flow log shows the call leaving "pp-prod-eastus" for "cases-api-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: After the outage ends and prod fails back, calls leave from pp-prod-westus again
    Given the contoso landscape is running on the <fabric> fabric
    When the region "westus" has an outage
    And "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-eastus"
    When the outage of region "westus" ends
    And the environment "prod" fails back to "westus"
    And "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-westus"
    And the flow log shows the call leaving "pp-prod-westus" for "cases-api-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Without the peering, a failed-over prod gets the runtime's 502
    Given the contoso landscape is running on the <fabric> fabric
    When "alice@contoso.onmicrosoft.com" connects to "contoso-cases" in "prod"
    And the vNet peering between "vnet-prod-westus" and "vnet-prod-eastus" is switched off
    And the region "westus" has an outage
    And "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the runtime answers 502
    And the runtime's message names the host "pp-prod-eastus"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Dev reaches its public API; its traffic leaves from the Power Platform service
    Given the contoso landscape is running on the <fabric> fabric
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the call succeeds from host "pp-dev-westus"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario Outline: Test's connector pointed at prod's API cannot reach it
    Given the contoso landscape is running on the <fabric> fabric with "cr_CasesApiHost" of "test" set to "cases-api-prod.azurewebsites.net"
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "test"
    Then the runtime answers 502
    And the runtime's message names the host "pp-test-westus"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario: Without its role, Dataverse cannot read the prod secret variables
    Given the contoso landscape is running without the role "Key Vault Secrets User" of "Dataverse" on "kv-contoso-prod"
    Then the variable "cr_CasesClientSecret" of "prod" does not resolve, with a message containing "Caller is not authorized to perform action on resource"
    And "alice@contoso.onmicrosoft.com" cannot create a connection to "contoso-cases" in "prod", with a message containing "cr_CasesClientId"

  # Without the link, the vault's name resolves to its public address, and a delegated subnet
  # has no route to the internet: the read never reaches the vault.
  Scenario Outline: Without the private DNS link, Dataverse cannot reach the prod vault
    Given the contoso landscape is running on the <fabric> fabric without the link of "pdz-vault-prod" to "vnet-prod-westus"
    Then the variable "cr_CasesClientSecret" of "prod" does not resolve, with a message containing "read from 'pp-prod-westus'"
    And the variable "cr_CasesClientId" of "prod" does not resolve, with a message containing "kv-contoso-prod"

    @loopback
    Examples: loopback
      | fabric   |
      | loopback |

    @netns
    Examples: netns
      | fabric |
      | netns  |

  Scenario: A rotated secret is used only after the connector is saved again
    Given the contoso landscape is running
    When the connector's client secret is rotated in Entra and in "kv-contoso-prod"
    And "alice@contoso.onmicrosoft.com" tries to connect to "contoso-cases" in "prod"
    Then the connection fails with Entra's error "AADSTS7000215"
    When the connector "contoso-cases" is saved again in "prod"
    And "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "prod"
    Then the call succeeds from host "pp-prod-westus"

  Scenario: A disabled user's connection turns to error
    Given the contoso landscape is running
    When "alice@contoso.onmicrosoft.com" connects to "contoso-cases" in "prod"
    And the user "alice@contoso.onmicrosoft.com" is disabled
    And the clock advances by 2 hours
    Then testing the connection of "alice@contoso.onmicrosoft.com" to "contoso-cases" in "prod" shows the error "AADSTS50057"

  Scenario: An unregistered redirect URI is refused by Entra
    Given the contoso landscape is running with the redirect URI of "cases-connector" unregistered
    When "alice@contoso.onmicrosoft.com" tries to connect to "contoso-cases" in "prod"
    Then the connection fails with Entra's error "AADSTS50011"

  Scenario: A connection is its owner's: another user gets the ACL error
    Given the contoso landscape is running
    When "alice@contoso.onmicrosoft.com" connects to "contoso-cases" in "prod"
    And "bob@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" through the connection of "alice@contoso.onmicrosoft.com"
    Then the runtime answers 400
    And the runtime's message says "Permission denied due to missing connection ACL"

  Scenario: A missing required parameter is refused before anything is sent
    Given the contoso landscape is running
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?status=sleeping" on "contoso-cases" in "prod"
    Then the runtime answers 400
    And the runtime's message says "status"

  Scenario: The runtime refuses a token for another audience
    Given the contoso landscape is running
    When "alice@contoso.onmicrosoft.com" calls the runtime with a token for "api://contoso-cases"
    Then the runtime answers 401

  # The dev case API stubbed (implementation: {kind: stub}): wiremock behind the API's public
  # face, reached by its host name and the run's TLS, so the runtime cannot tell it from the
  # real backend.
  @stub
  Scenario: A stubbed backend's answer reaches the app, and the backend saw the user's token
    Given the contoso landscape is running with the API "cases-api-dev" as a stub
    And the API "cases-api-dev" answers GET "/cases/search" with 200 and the JSON body:
      """
      {"value": [{"id": "stub-1", "title": "Stubbed outage in westus"}]}
      """
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the call succeeds from host "pp-dev-westus"
    And the runtime's message says "Stubbed outage in westus"
    And the API "cases-api-dev" received 1 request with a bearer token for "api://contoso-cases"

  @stub
  Scenario: A backend slower than the runtime's timeout gets the runtime's 504
    Given the contoso landscape is running with the API "cases-api-dev" as a stub
    And the API "cases-api-dev" answers GET "/cases/search" with 200 after 30 seconds
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the runtime answers 504
    And the API "cases-api-dev" received 1 request

  @stub
  Scenario: A failing backend's status and body reach the app unchanged
    Given the contoso landscape is running with the API "cases-api-dev" as a stub
    And the API "cases-api-dev" answers GET "/cases/search" with 503
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the runtime answers 503

  @stub
  Scenario: A stub's mappings file answers as written
    Given the contoso landscape is running with the API "cases-api-dev" stubbed by "stubs/cases-outage.yaml"
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the call succeeds from host "pp-dev-westus"
    And the runtime's message says "Stubbed regional outage"
    And the API "cases-api-dev" received 1 request with a bearer token for "api://contoso-cases"
