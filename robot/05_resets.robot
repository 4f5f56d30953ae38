*** Settings ***
Documentation     Resets and cables: a board reset in the middle of a stream, an unplugged and
...               reconnected board, and the soft reset between tests that keeps one test's
...               output out of the next.
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board


*** Test Cases ***
A Stream Left Running Does Not Leak Into The Next Test
    [Documentation]    Leaves the fastest stream of 8 channels the board takes (up to 16 kHz)
    ...                running at the end of a test, then plays the boundary to the next test
    ...                itself (this test's teardown, the next one's setup), so it holds however
    ...                the tests are split (pabot --testlevelsplit, any order): the next test
    ...                must see nothing of the stream.
    ${rate}=    Rate That Fits    channels=8    at_most=${TOP RATE}
    Start Stream    rate=${rate}    channels=8
    Keep Streaming    0.5 s
    End Test On Board    # as this test's teardown: with the stream still running
    Start Test On Board    name=${TEST NAME} (the next test)
    Board Should Be Idle And Quiet
    Device Log Should Not Contain    SAMPLES

A Soft Reset Mid-stream Leaves The Board Idle And Quiet
    ${rate}=    Rate That Fits    channels=8    at_most=${TOP RATE}
    Start Stream    rate=${rate}    channels=8
    Keep Streaming    0.5 s
    Soft Reset Board
    Board Should Be Idle And Quiet
    Stream For    1 s    rate=1000    channels=8
    Stream Should Be Complete

Device Reset Mid-stream
    Start Stream    rate=1000    channels=8
    Keep Streaming    0.5 s
    Reset Board Mid Stream
    Keep Streaming Until Board Reboots
    Stop Stream
    Stream Should Be Bit Exact
    Board Should Run This Firmware
    Stream For    1 s    rate=1000    channels=8
    Stream Should Be Complete

Unplug And Reconnect Mid-stream
    [Documentation]    The cable carries the power: the board reboots, the host reconnects and streams again.
    Start Stream    rate=1000    channels=8
    Keep Streaming    0.5 s
    Unplug Board
    Keep Streaming Until Reconnected
    Keep Streaming    0.5 s
    Stop Stream
    Stream Should Have Reconnected
    Stream Should Be Bit Exact
    Stream For    1 s    rate=1000    channels=8
    Stream Should Be Complete

Hard Reset While Idle
    [Documentation]    On the rp2040 tier, as on a Pico, by machine.reset(): the chip reboots from its
    ...                flash, its port goes away and comes back.
    Hard Reset Board
    Board Should Run This Firmware
    ${tier}=    Board Tier
    IF    $tier == 'rp2040'    Device Log Should Contain    machine.reset(): the port came back
