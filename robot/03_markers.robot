*** Settings ***
Documentation     Markers: the board stamps each MARK with its current sample index; the host
...               receives them in order, within the stream, with their codes intact.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board


*** Test Cases ***
Markers Arrive In Order Within The Stream
    Start Stream    rate=1000    channels=8
    Keep Streaming    0.3 s
    Send Marker    1
    Keep Streaming    0.3 s
    Send Marker    2
    Keep Streaming    0.3 s
    Send Marker    3
    Keep Streaming    0.3 s
    Stop Stream
    Markers Should Be    1    2    3
    Stream Should Be Complete

Marker Codes Keep All 16 Bits
    ${rate}=    Rate That Fits    channels=1    at_most=${TOP RATE}
    Start Stream    rate=${rate}    channels=1
    Keep Streaming    0.2 s
    Send Marker    0
    Send Marker    65535
    Send Marker    43690
    Keep Streaming    0.2 s
    Stop Stream
    Markers Should Be    0    65535    43690
    Stream Should Be Complete
