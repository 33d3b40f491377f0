"""The step ``send_input:<name>``: put one run input into the machine's store of inputs.

The store holds each input once per content (see :mod:`hpcdo.inputs`): the
check asks whether the probe saw the stamp of the input's current digest,
and the action sends the file or the whole tree as one sealed tar stream
(``sh/input.sh``), stamped only once all of it arrived.
"""

import os

from .. import inputs as input_store
from ..model import Stamp
from ..remote import scripts, transfer


class SendInput:
    """The input uploads of one target (a recipe on a machine)."""

    def __init__(self, target):
        self.session, self.target = target.session, target
        self.recipe, self.machine = target.recipe, target.machine

    def current(self, iname):
        sig = input_store.digest(self.target, iname)
        stamp = self.session.stamp(input_store.key(self.target, sig))
        return bool(stamp) and stamp.sig == sig

    def why(self, iname):
        return "input %s (this content of %s) is not on the machine" % (iname, self.recipe.inputs[iname].path)

    def do(self, iname):
        target = self.target
        sig = input_store.digest(target, iname)
        path = self.recipe.inputs[iname].local(target.project_dir)
        if os.path.isdir(path):
            root, names = path, input_store.tree_files(path)
            arcnames = ["content/" + rel for rel in names]
        else:
            root, names, arcnames = os.path.dirname(path), [os.path.basename(path)], ["content"]
        stamp = Stamp(sig=sig)
        seal = transfer.new_seal()
        script = scripts.input_script(self.machine.remote_root, input_store.store_dir(target, sig), iname, seal,
                                      stamp.to_json())
        size = sum(os.path.getsize(os.path.join(root, n)) for n in names)
        what = "send input %s (%d file%s, %d bytes)" % (iname, len(names), "s"[:len(names) != 1], size)
        transfer.send_files(self.session.remote, script, root, names, what=what, seal=seal, arcnames=arcnames)
        self.session.set_stamp(input_store.key(target, sig), stamp)
        return "sent input %s (%d file%s, %d bytes)" % (iname, len(names), "s"[:len(names) != 1], size)
