"""mmflux.compat.repeatable_warning: mmengine's duplicate filter passes it every time."""
from mmengine.logging import MMLogger

from mmflux.compat.repeatable_warning import RepeatableWarning


def test_repeats_are_logged_plain_strings_are_not(tmp_path):
    log_file = str(tmp_path / 'run.log')
    logger = MMLogger.get_instance('repeatable_warning_test', log_file=log_file)
    for _ in range(3):
        logger.warning(RepeatableWarning('skipped bad.mp4'))
        logger.warning('plain text warning')
    for handler in logger.handlers:
        handler.flush()
    text = open(log_file).read()
    assert text.count('skipped bad.mp4') == 3  # mmflux's events, every time
    assert text.count('plain text warning') == 1  # mmengine's filter, unchanged for the rest


def test_compares_only_to_itself():
    message = RepeatableWarning('x')
    assert message == message and message != RepeatableWarning('x') and message != 'x'
    assert str(message) == 'x'  # still a str for formatting
