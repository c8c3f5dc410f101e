"""Time conversions of labbook.clock: microseconds as a store keeps them <-> datetimes / ISO."""
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from labbook import clock

# every time a naive datetime can hold, in microseconds since 1970
MICROS = st.integers(min_value=(dt.datetime.min - clock.EPOCH) // clock.MICROSECOND,
                     max_value=(dt.datetime.max - clock.EPOCH) // clock.MICROSECOND)


def _iso(micros):
    return [None if us is None else (clock.EPOCH + dt.timedelta(microseconds=us)).isoformat()
            for us in micros]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.one_of(MICROS, st.none()), max_size=60))
def test_iso_of_microseconds_is_what_isoformat_gives(micros):
    assert clock.to_iso(clock.Micros(micros)) == _iso(micros)


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(-62_135_596_800, 253_402_300_795),  # whole seconds a datetime can hold
       st.lists(st.integers(0, 3 * 10 ** 6), min_size=1, max_size=80))
def test_iso_of_points_that_share_seconds(start, offsets):
    # a run's points: many in one second, some on a whole second (no fraction in the text)
    micros = [start * 1_000_000 + offset for offset in offsets]
    assert clock.to_iso(clock.Micros(micros)) == _iso(micros)


def test_microseconds_pass_through_and_round_trip():
    micros = clock.Micros([0, 1_796_653_617_597_086, None])
    assert clock.to_microseconds(micros) is micros  # nothing converted
    times = clock.from_microseconds(micros)
    assert times[1] == dt.datetime(2026, 12, 7, 14, 26, 57, 597086) and times[2] is None
    assert clock.to_microseconds(times) == list(micros)
