"""The child process of :mod:`mmflux.datasets.isolated_decoder`: decord runs here.

Run by file path (``python -c`` loads this file, not the ``mmflux`` package), so
it imports only the standard library, numpy and decord: it starts in a fraction
of a second and holds little memory. It opens a video exactly as MMAction2's
``DecordInit`` does (the file's bytes through ``io.BytesIO``) and answers
requests on a pipe until the pipe closes. If decord crashes (a segfault inside
FFmpeg on a damaged file), only this process dies; the parent names the file
and starts a new child for the next video.

Requests (tuples) and answers (``('ok', value)`` or ``('error', type, message)``):

* ``('open', reader_id, kind, source, num_threads)``: ``kind`` is ``'path'``
  (``source`` a local file, read here) or ``'bytes'``; answers
  ``(num_frames, avg_fps)``.
* ``('get_batch', reader_id, indices)``: an ``(N, H, W, 3)`` uint8 array.
* ``('seek', reader_id, index)``, ``('next', reader_id)``: as decord's.
"""
import io
import signal
import sys


def _serve(conn) -> None:
    import decord  # noqa: F401 - imported once, before the first request
    current_id, reader = None, None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent closed the pipe or died
        op, reader_id = request[0], request[1]
        try:
            if op == 'open':
                _, _, kind, source, num_threads = request
                if kind == 'path':
                    with open(source, 'rb') as f:
                        source = f.read()
                reader = None  # release the previous video first
                reader = decord.VideoReader(io.BytesIO(source), num_threads=num_threads)
                current_id = reader_id
                value = (len(reader), float(reader.get_avg_fps()))
            elif reader is None or reader_id != current_id:
                raise RuntimeError('this video reader was closed: another video was opened since')
            elif op == 'get_batch':
                value = reader.get_batch(list(request[2])).asnumpy()
            elif op == 'seek':
                reader.seek(int(request[2]))
                value = None
            elif op == 'next':
                value = reader.next().asnumpy()
            else:
                raise ValueError(f'unknown request {op!r}')
            answer = ('ok', value)
        except Exception as err:  # noqa: BLE001 - sent to the parent, which raises it
            answer = ('error', type(err).__name__, str(err))
        conn.send(answer)


def main(argv) -> None:
    from multiprocessing.connection import Connection
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent; the pipe then closes
    read_fd, write_fd = int(argv[0]), int(argv[1])
    requests, answers = Connection(read_fd, writable=False), Connection(write_fd, readable=False)

    class _Duplex:
        recv, send = requests.recv, answers.send

    _serve(_Duplex)


if __name__ == '__main__':
    main(sys.argv[1:])
