*** Settings ***
Documentation     Flashing with `picodaq flash`: the suite's board gets this checkout's firmware
...               once, and only when its files' hashes differ from the manifest; soft resets
...               between tests never re-flash.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board


*** Test Cases ***
Board Runs This Checkout's Firmware
    Board Should Run This Firmware

Flashing Again Writes Nothing When The Hashes Match
    Firmware Should Be Up To Date
    Board Should Run This Firmware

A Soft Reset Does Not Re-flash
    Soft Reset Board
    Firmware Should Be Up To Date
    Device Log Should Contain    soft reset

A Forced Flash Rewrites And Verifies Every File
    ${written}=    Flash Firmware    force=True
    Should Be True    ${written}
    Flash Should Have Rewritten Every File
    Firmware Files Should Match This Checkout
    Firmware Should Be Up To Date
    Board Should Run This Firmware
    Stream For    1 s    rate=1000    channels=2
    Stream Should Be Complete
