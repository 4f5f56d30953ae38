*** Settings ***
Documentation     Streaming the ramp at 250 Hz, 1 kHz and 16 kHz with 1, 8 and 32 channels,
...               in every sample format: every sample of every channel is checked bit for
...               bit, and every sample is delivered or counted as lost.
...
...               A case the board cannot serve (more channels than it has, a ring that
...               cannot hold a second of it) is skipped with the board's own reason; the
...               ``<=16000`` cases stream at the highest rate up to 16 kHz the board takes
...               (a Pico's ring holds 16 kHz of one int16 channel, not of eight).
...
...               16 kHz x 32 channels is 512k samples/s: the emulated board (MicroPython's
...               unix port on a shared machine) may not generate that in real time, so that
...               case allows samples dropped on the board, as long as the board reported
...               every one and the host counted every one (a warning says how many).
Resource          resources/picodaq.resource
Suite Setup       Open Board
Suite Teardown    Close Board
Test Setup        Start Test On Board
Test Teardown     End Test On Board
Test Template     Stream Should Be Bit Exact And Complete


*** Test Cases ***                      RATE     CHANNELS    FMT      ALLOW_BOARD_DROPS
250 Hz x 1 channel                      250      1           int16    False
250 Hz x 8 channels                     250      8           int24    False
250 Hz x 32 channels                    250      32          int32    False
1 kHz x 1 channel                       1000     1           int24    False
1 kHz x 8 channels                      1000     8           int32    False
1 kHz x 32 channels                     1000     32          int16    False
16 kHz x 1 channel                      16000    1           int32    False
16 kHz x 8 channels                     16000    8           int16    False
16 kHz x 32 channels                    16000    32          int16    True
Fastest up to 16 kHz x 1 channel        <=16000  1           int32    False
Fastest up to 16 kHz x 8 channels       <=16000  8           int16    False
