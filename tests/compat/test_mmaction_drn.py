"""mmflux.compat.mmaction_drn: the placeholder exists only where the wheel lacks DRN."""
import os.path as osp
import sys

import pytest

import mmaction
from mmflux.compat import mmaction_drn

WHEEL_LACKS_DRN = not osp.isdir(osp.join(osp.dirname(mmaction.__file__), 'models', 'localizers',
                                         'drn'))


@pytest.mark.skipif(not WHEEL_LACKS_DRN, reason='this mmaction2 ships DRN: nothing to replace')
def test_placeholder_registered_and_says_why():
    from mmaction.models.localizers.drn.drn import DRN
    assert DRN is mmaction_drn.DRN
    with pytest.raises(ImportError, match='issue 2714'):
        DRN()


def test_registered_once_and_never_over_a_real_module(monkeypatch):
    monkeypatch.setitem(sys.modules, mmaction_drn.MODULE, object())
    assert mmaction_drn.register_missing_drn() is False  # already there: left alone
    monkeypatch.delitem(sys.modules, mmaction_drn.MODULE)
    monkeypatch.delitem(sys.modules, mmaction_drn.MODULE + '.drn', raising=False)
    monkeypatch.setattr(mmaction_drn.osp, 'exists', lambda path: True)  # a source install
    assert mmaction_drn.register_missing_drn() is False
    assert mmaction_drn.MODULE not in sys.modules
