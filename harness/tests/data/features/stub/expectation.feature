Feature: A stub's expectations
  The `ppvnet test` tests run these: the same stubbed call, once with the expectation it meets
  and once with one it does not (the stub received one request, not two).

  Scenario: The expectation is met
    Given the contoso landscape is running with the API "cases-api-dev" stubbed by "stubs/cases-outage.yaml"
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the call succeeds from host "pp-dev-westus"
    And the API "cases-api-dev" received 1 request with a bearer token for "api://contoso-cases"

  Scenario: The expectation is not met
    Given the contoso landscape is running with the API "cases-api-dev" stubbed by "stubs/cases-outage.yaml"
    When "alice@contoso.onmicrosoft.com" calls "GET /cases/search?q=outage" on "contoso-cases" in "dev"
    Then the API "cases-api-dev" received 2 requests
