using System;
using Demo;
using Moonforge;
using UnityEngine;

/// <summary>
/// Plays the demo game of a Moonforge server (`make run` in the server's repository): guest login,
/// a chat message, the arena with moves from the arrow keys, and the arena state pushed 20 times a
/// second. Add it to any GameObject and press Play. The client reconnects and resumes by itself
/// after a network loss; when the session is gone it logs in again.
/// </summary>
public sealed class DemoGameClient : MonoBehaviour
{
    [SerializeField, Tooltip("Server host")] private string host = "127.0.0.1";
    [SerializeField, Tooltip("7001 for TCP, 7002 for WebSocket")] private int port = 7001;
    [SerializeField] private Transport transport = Transport.Tcp;

    private MoonforgeClient client;
    private IDisposable stateHandler;
    private IDisposable chatHandler;
    private ArenaState lastState;
    private bool inArena;
    private bool moving;

    /// <summary>The last arena state received, for rendering.</summary>
    public ArenaState LastState
    {
        get { return lastState; }
    }

    private void Start()
    {
        client = new MoonforgeClient(new ClientOptions
        {
            Host = host,
            Port = port,
            Transport = transport,
            Log = Debug.LogWarning,
        });
        client.EventRaised += OnClientEvent;
        stateHandler = client.On<ArenaState>((state, seq) => lastState = state);
        chatHandler = client.On<ChatMessage>(msg => Debug.Log("[chat] " + msg.From + ": " + msg.Text));
        Play();
    }

    // Update drives the client: replies, pushes and events run here, on the main thread.
    private void Update()
    {
        if (client == null) return;
        client.Update();
        if (inArena && !moving)
        {
            float x = Input.GetAxisRaw("Horizontal");
            float y = Input.GetAxisRaw("Vertical");
            if (x != 0 || y != 0) Move(x, y);
        }
    }

    private void OnDestroy()
    {
        if (stateHandler != null) stateHandler.Dispose();
        if (chatHandler != null) chatHandler.Dispose();
        if (client != null) client.Close();
    }

    private async void Play()
    {
        try
        {
            await client.ConnectAsync();
            await LogInAndJoin();
            ChatSendAck sent = await client.ChatSendAsync(new ChatSendReq { Text = "hello from Unity" });
            Debug.Log("chat message #" + sent.Index + " sent");
        }
        catch (MoonforgeException e)
        {
            Debug.LogError("Moonforge " + e.CodeName + ": " + e.Message);
        }
    }

    private async System.Threading.Tasks.Task LogInAndJoin()
    {
        LoginAck login = await client.LoginGuestAsync(SystemInfo.deviceUniqueIdentifier);
        Debug.Log("logged in as " + login.PlayerId + (login.Created ? " (new player)" : ""));
        ArenaJoinAck join = await client.ArenaJoinAsync(new ArenaJoinReq());
        Debug.Log("joined arena " + join.RoomId + " at " + join.Pos + " with " + join.Players.Count + " player(s)");
        inArena = true;
    }

    private async void Move(float x, float y)
    {
        moving = true;
        try
        {
            await client.ArenaMoveAsync(new ArenaMoveReq { Dir = new Vec2 { X = x, Y = y } });
        }
        catch (MoonforgeException e)
        {
            Debug.LogWarning("move refused: " + e.CodeName + " " + e.Message);
        }
        finally
        {
            moving = false;
        }
    }

    private async void OnClientEvent(ClientEvent ev, EventInfo info)
    {
        switch (ev)
        {
            case ClientEvent.Disconnected:
                inArena = inArena && info.WillReconnect;
                Debug.LogWarning("disconnected: " + info.Reason + (info.WillReconnect ? " (reconnecting)" : ""));
                break;
            case ClientEvent.Resumed:
                Debug.Log("session resumed, " + info.Replayed + " push(es) replayed");
                break;
            case ClientEvent.Kicked:
                Debug.LogWarning("kicked: " + ErrorCodes.Name(info.Code) + " " + info.Reason);
                break;
            case ClientEvent.LoginRequired:
                inArena = false;
                try
                {
                    await LogInAndJoin();
                }
                catch (MoonforgeException e)
                {
                    Debug.LogError("login again failed: " + e.CodeName + " " + e.Message);
                }
                break;
        }
    }
}
