using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace Moonforge
{
    /// <summary>
    /// Work handed from network threads to the thread that calls <see cref="Drain"/> (the game's main
    /// thread). Post is safe from any thread and never blocks; Drain must be called from one thread at
    /// a time. The queue is bounded by whoever posts: the reader waits in <see cref="WaitForRoomAsync"/>
    /// before it posts what it received.
    /// </summary>
    internal sealed class DispatchQueue
    {
        private static readonly Task Done = Task.FromResult(true);

        private readonly object mu = new object();
        private readonly Queue<Action> queue = new Queue<Action>();
        private readonly int capacity;
        private TaskCompletionSource<bool> room;

        /// <summary>A queue that WaitForRoomAsync keeps below capacity items.</summary>
        internal DispatchQueue(int capacity)
        {
            this.capacity = Math.Max(1, capacity);
        }

        /// <summary>How many items wait.</summary>
        internal int Count
        {
            get { lock (mu) return queue.Count; }
        }

        /// <summary>Queues work; never blocks.</summary>
        internal void Post(Action work)
        {
            lock (mu) queue.Enqueue(work);
        }

        /// <summary>Completes (on a thread-pool thread) once fewer than capacity items wait.</summary>
        internal Task WaitForRoomAsync()
        {
            lock (mu)
            {
                if (queue.Count < capacity) return Done;
                if (room == null) room = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                return room.Task;
            }
        }

        /// <summary>Runs at most budget items of the work queued before the call (work it queues runs at a
        /// later Drain) and returns how many ran. An exception from one item goes to onError; the rest
        /// still runs.</summary>
        internal int Drain(int budget, Action<Exception> onError)
        {
            int n;
            lock (mu) n = Math.Min(queue.Count, budget);
            int ran = 0;
            while (ran < n)
            {
                Action work;
                lock (mu)
                {
                    if (queue.Count == 0) break;
                    work = queue.Dequeue();
                }
                WakeIfRoom();
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

        /// <summary>Drops everything queued and wakes a waiting reader.</summary>
        internal void Clear()
        {
            lock (mu) queue.Clear();
            WakeIfRoom();
        }

        private void WakeIfRoom()
        {
            TaskCompletionSource<bool> r;
            lock (mu)
            {
                if (room == null || queue.Count >= capacity) return;
                r = room;
                room = null;
            }
            r.TrySetResult(true);
        }
    }
}
