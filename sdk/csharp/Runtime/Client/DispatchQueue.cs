using System;
using System.Collections.Concurrent;

namespace Moonforge
{
    /// <summary>
    /// Work handed from network threads to the thread that calls <see cref="Drain"/> (the game's main
    /// thread). Post is safe from any thread; Drain must be called from one thread at a time.
    /// </summary>
    internal sealed class DispatchQueue
    {
        private readonly ConcurrentQueue<Action> queue = new ConcurrentQueue<Action>();

        /// <summary>Queues work; never blocks.</summary>
        internal void Post(Action work)
        {
            queue.Enqueue(work);
        }

        /// <summary>Runs the work queued before the call (work it queues runs at the next Drain) and
        /// returns how much ran. An exception from one piece goes to onError; the rest still runs.</summary>
        internal int Drain(Action<Exception> onError)
        {
            int n = queue.Count;
            int ran = 0;
            Action work;
            while (ran < n && queue.TryDequeue(out work))
            {
                ran++;
                try
                {
                    work();
                }
                catch (Exception e)
                {
                    onError(e);
                }
            }
            return ran;
        }
    }
}
