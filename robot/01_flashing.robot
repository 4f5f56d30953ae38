*** Settings ***
Documentation     Flashing: the suite's board gets this checkout's firmware once, and only when
...               its files' hashes differ; soft resets between tests never re-flash.
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

A Forced Flash Over The Raw REPL Verifies Every File
    [Documentation]    The mpremote path that real boards take, here on whichever board the suite has.
    ${written}=    Flash Firmware    force=True    method=mpremote
    Should Be True    ${written}
    Firmware Should Be Up To Date
    Board Should Run This Firmware
    Stream For    1 s    rate=1000    channels=2
    Stream Should Be Complete
