using System;
using System.Threading;
using System.Threading.Tasks;
using Demo;
using Moonforge;

/// <summary>
/// Plays the demo game of a Moonforge server from a console, on mono or .NET: guest login, chat,
/// the arena with a few moves while the state pushes arrive, then the player's statistics. Start the
/// server with `make run`, then `make sdk-demo` (or `make sdk-demo ARGS="127.0.0.1 7002 ws"`, or
/// `ARGS="127.0.0.1 7003 kcp"`).
///
///   mono ConsoleDemo.exe [host] [port] [tcp|ws|kcp]
///
/// The Main loop plays the part of a game's frame loop: it calls client.Update(), where replies,
/// pushes and the code after each await run. Exit status 0 when every step was answered.
/// </summary>
public static class ConsoleDemo
{
    public static int Main(string[] args)
    {
        var options = new ClientOptions
        {
            Host = args.Length > 0 ? args[0] : "127.0.0.1",
            Port = args.Length > 1 ? int.Parse(args[1]) : 0, // 0: the transport's default port
            Transport = args.Length < 3 ? Transport.Tcp : args[2] == "ws" ? Transport.WebSocket : args[2] == "kcp" ? Transport.Kcp : Transport.Tcp,
            Reconnect = false,
            Log = line => Console.Error.WriteLine("client: " + line),
        };
        var client = new MoonforgeClient(options);
        int states = 0;
        client.On<ChatMessage>((msg, seq) => Console.WriteLine("<< push " + seq + " ChatMessage " + msg));
        client.On<ArenaState>((state, seq) =>
        {
            if (states++ < 3) Console.WriteLine("<< push " + seq + " ArenaState " + state);
        });
        client.EventRaised += (ev, info) => Console.WriteLine("event " + ev + (string.IsNullOrEmpty(info.Reason) ? "" : ": " + info.Reason));

        Task play = Play(client);
        while (!play.IsCompleted)
        {
            client.Update();
            Thread.Sleep(5);
        }
        client.Update();
        client.Close();
        if (play.IsFaulted)
        {
            Exception e = play.Exception.GetBaseException();
            var me = e as MoonforgeException;
            Console.Error.WriteLine(me != null ? "demo: " + me.CodeName + ": " + me.Message : "demo: " + e.Message);
            return 1;
        }
        Console.WriteLine("demo: ok, " + states + " arena states received");
        return 0;
    }

    private static async Task Play(MoonforgeClient client)
    {
        ClientOptions o = client.Options;
        await client.ConnectAsync();
        Console.WriteLine("connected to " + o.Host + ":" + o.Port + " over " + o.Transport);
        LoginAck login = await client.LoginGuestAsync("csharp-console-demo-" + Guid.NewGuid().ToString("N"));
        Console.WriteLine("<- LoginAck player " + login.PlayerId + (login.Created ? " (new player)" : ""));

        ChatSendAck sent = await client.ChatSendAsync(new ChatSendReq { Text = "hello from the C# console demo" });
        Console.WriteLine("<- ChatSendAck " + sent);

        ArenaJoinAck join = await client.ArenaJoinAsync(new ArenaJoinReq());
        Console.WriteLine("<- ArenaJoinAck " + join);
        var dirs = new[] { new Vec2 { X = 1 }, new Vec2 { Y = 1 }, new Vec2 { X = -1 }, new Vec2 { Y = -1 } };
        for (int i = 0; i < 8; i++)
        {
            ArenaMoveAck moved = await client.ArenaMoveAsync(new ArenaMoveReq { Dir = dirs[i % dirs.Length] });
            Console.WriteLine("<- ArenaMoveAck " + moved);
        }
        await Task.Delay(300); // the room ticks at 20 Hz: a few ArenaState pushes
        ArenaLeaveAck left = await client.ArenaLeaveAsync(new ArenaLeaveReq());
        Console.WriteLine("<- ArenaLeaveAck " + left);

        StatsAck stats = await client.StatsAsync(new StatsReq());
        Console.WriteLine("<- StatsAck " + stats);
    }
}
