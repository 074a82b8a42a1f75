"""The standard provider's `WeekDay`: ISO day numbers (Monday 1 … Sunday 7) by name."""

import enum


class WeekDay(enum.IntEnum):
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str):
        """The number of a day given by name, in any case (`"monday"` → 1)."""
        try:
            return cls[week_day_str.upper()]
        except KeyError:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"') from None

    @classmethod
    def convert(cls, day):
        """A day given as a WeekDay or its name, as a WeekDay."""
        if isinstance(day, WeekDay):
            return day
        return cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day):
        """A set of WeekDays from one day or an iterable of days (names or WeekDays)."""
        if isinstance(week_day, (str, WeekDay)):
            return {cls.convert(week_day)}
        return {cls.convert(day) for day in week_day}
